"""Entry point of a spawned simulator process (kept out of `__init__` so `-m` runs it cleanly)."""

from llm_pipeline.simulator.process import main

if __name__ == "__main__":
    main()
