"""One module per asset. All pipeline assets share the daily partitions and `PIPELINE_GROUP`."""

#: The group of the four pipeline assets; the `daily_pipeline` job selects it.
PIPELINE_GROUP = "llm_pipeline"
