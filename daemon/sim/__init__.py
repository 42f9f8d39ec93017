"""The putting-mat simulator: renders what the camera over a Proof of Putt rig sees, with exact ground truth."""
