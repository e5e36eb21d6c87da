"""What the persona can act on: its tools, the code workspace and the shutdown sandbox."""
