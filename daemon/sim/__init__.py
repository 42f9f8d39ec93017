"""The putting-mat simulator: what the camera over a Proof of Putt rig sees, with exact ground truth."""
