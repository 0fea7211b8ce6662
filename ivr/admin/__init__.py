"""The admin tools: the CLI, `check`, prompts, the demo."""
