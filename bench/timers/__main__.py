from bench.timers.cli import main

main()
