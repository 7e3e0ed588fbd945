"""The installer's commands (``simrotor provision …``): what an installer runs on site to
turn a box of modems into an enrolled appliance."""
