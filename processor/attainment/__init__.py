"""SLA attainment reports of a replay: figures (compute), JSON and CSV (render_data), HTML."""
