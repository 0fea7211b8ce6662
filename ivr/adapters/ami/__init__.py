"""AMI: one logged-in session per PBX and its ordered event queue."""
