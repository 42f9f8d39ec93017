"""The calibration page of `putt-daemon calibrate --serve`: `index.html` (package data), its state (`page`),
its HTTP server (`server`) and the command (`command`)."""
