"""The ground every simrotor package stands on: files, clock, phone numbers, masking, logs,
config bounds and the CLI option kit. It imports none of the project's packages."""
