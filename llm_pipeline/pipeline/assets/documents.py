"""raw_documents: the day's JSONL input, validated into one row per line.

No `from __future__ import annotations`: Dagster reads the annotations below as real types.
"""

from collections import Counter

import dagster as dg

from llm_pipeline.pipeline.assets import PIPELINE_ASSET
from llm_pipeline.pipeline.config import PipelineConfig
from llm_pipeline.pipeline.io_manager import StagedTable, staging_writer
from llm_pipeline.pipeline.step_parts import RowTally
from llm_pipeline.warehouse.documents import read_documents

__all__ = ["raw_documents"]

_PREVIEW_ROWS = 5
_PREVIEW_COLUMNS = ("line_no", "doc_id", "status", "error", "flags", "char_count", "text")


@dg.asset(**PIPELINE_ASSET, kinds={"parquet"})
def raw_documents(
    context: dg.AssetExecutionContext, pipeline_config: PipelineConfig
) -> dg.Output[StagedTable]:
    """The day's input lines, validated: one row per line, each bad line rejected with its reason."""
    settings = pipeline_config.settings()
    path = settings.raw_path(context.partition_key)
    if not path.is_file():
        raise dg.Failure(
            description=f"input file {path} does not exist (partition {context.partition_key})",
            metadata={"path": dg.MetadataValue.path(str(path))},
        )

    tally = RowTally(_PREVIEW_COLUMNS, per_status=_PREVIEW_ROWS)
    reasons: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    with staging_writer(context) as writer:
        for doc in read_documents(path, max_chars=settings.max_doc_chars):
            row = doc.as_row()
            writer.append(row)
            tally.add(row)
            flags.update(doc.flags)
            if doc.reason:
                reasons[doc.reason] += 1
        staged = writer.close()
    statuses = tally.statuses

    context.log.info(
        f"{path}: {staged.num_rows} lines, {statuses['ok']} ok, {statuses['rejected']} rejected"
        + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))})" if reasons else "")
        + (f"; flagged {dict(sorted(flags.items()))}" if flags else "")
    )
    return dg.Output(
        staged,
        metadata={
            "input_path": dg.MetadataValue.path(str(path)),
            "ok": statuses["ok"],
            "rejected": statuses["rejected"],
            "reasons": dg.MetadataValue.json(dict(sorted(reasons.items()))),
            "flags": dg.MetadataValue.json(dict(sorted(flags.items()))),
            "max_doc_chars": settings.max_doc_chars,
            "preview": tally.preview(),
        },
    )
