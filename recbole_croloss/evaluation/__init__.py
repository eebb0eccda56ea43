"""Full-ranking evaluation at any catalogue size: chunked exact top-N, RecBole's metrics."""
from .evaluator import FullRankingEvaluator, MemoryPlan, format_bytes, parse_bytes, plan_memory
from .metrics import (METRICS, Metric, MetricAccumulator, RankedHits, check_metrics, per_user_metrics,
                      register_metric, results_table, target_counts, target_hits, TargetCounts)
from .topk import Exclusions, chunked_topk

__all__ = ["FullRankingEvaluator", "MemoryPlan", "plan_memory", "parse_bytes", "format_bytes",
           "METRICS", "MetricAccumulator", "check_metrics", "per_user_metrics", "target_hits", "target_counts", "TargetCounts", "results_table",
           "Metric", "RankedHits", "register_metric",
           "Exclusions", "chunked_topk"]
