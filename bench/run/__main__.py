from bench.run.cli import main

main()
