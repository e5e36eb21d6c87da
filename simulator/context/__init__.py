"""What every part of a run reads: the run context (models, memory, log, config), the persona card,
its memory and the prompts built from them."""
