"""The language models a run calls: the backend seam (embedded llama.cpp, OpenAI-compatible, replay),
the model-call cache and the managed vLLM server."""
