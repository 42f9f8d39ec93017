"""What carries a finished session to its owner: session boundaries, reports and statistics."""
