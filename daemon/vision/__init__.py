"""The vision stages: camera, motion gate, ball detector, tracker, calibration and putt classifier."""
