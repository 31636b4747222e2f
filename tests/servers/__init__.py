"""Real servers on loopback for the integration tests: each fixture module starts one
server from a config directory in a temp folder, waits until its port answers, and
stops it by PID."""
