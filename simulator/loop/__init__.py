"""The extrapolation loop: the LangGraph stage graph, the runner, the operators, the agent that works
episodes, deliberation, resume and rescore."""
