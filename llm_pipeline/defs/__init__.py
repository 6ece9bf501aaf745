"""Dagster's defs folder: LLM steps of your own, one `<step>/defs.yaml` each.

`dg scaffold defs llm_pipeline.pipeline.component.LLMStepComponent <step>` writes a working one
(README, "Add your own step"). `llm_pipeline/definitions.py` loads this folder beside the built-in
steps; an empty folder adds nothing.
"""
