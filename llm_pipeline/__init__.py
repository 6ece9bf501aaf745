"""llm_pipeline: a day's documents through Claude as fast as the rate limits allow, losing none."""
