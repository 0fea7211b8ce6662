"""Configuration: the TOML file and environment, per PBX and per queue."""
