"""Pure pipeline steps: input validation, prompts, output schemas and parsing. No Dagster here."""
