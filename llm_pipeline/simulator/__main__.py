"""`python -m llm_pipeline.simulator` is the `llm-pipeline-simulator` command."""

from llm_pipeline.simulator.cli import main

if __name__ == "__main__":
    main()
