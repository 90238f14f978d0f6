"""Shared data of the price-sheet comparison tests (test_compare_pricing.py, test_pricing_diff.py).

The sheets and traffic are worked out by hand in test_compare_pricing.py's docstring.
"""

from __future__ import annotations

from typing import Any

from helpers import Lines

MAIN_CSV = """model,input_per_1m,output_per_1m,service_tier
cheap-m,2.00,8.00,standard
dear-m,0.50,1.50,standard
free-m,0,0,standard
flexy,0.50,2.00,standard
flexy,0.25,1.00,flex
"""
OTHER_CSV = """model,input_per_1m,output_per_1m,service_tier
cheap-m,1.00,4.00,standard
dear-m,1.00,3.00,standard
only-cmp,3.00,6.00,standard
free-m,1.00,1.00,standard
flexy,0.40,1.60,standard
"""
# A third sheet: everything at 1/1, nothing for flexy.
FLAT_CSV = """model,input_per_1m,output_per_1m
cheap-m,1,1
dear-m,1,1
free-m,1,1
only-cmp,1,1
mystery,1,1
"""
EVIL = '<img src=x onerror="alert(1)">&amp;'


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def traffic_lines(lines: Lines) -> list[dict[str, Any]]:
    return [
        lines.chat("a", model="cheap-m", usage=usage(1000, 500)),
        lines.chat("b", model="cheap-m", usage=usage(2000, 1000)),
        lines.chat("c", model="dear-m", usage=usage(4000, 1000)),
        lines.chat("d", model="only-cmp", usage=usage(1000, 1000)),
        lines.chat("e", model="mystery", usage=usage(10, 10)),
        lines.chat("f", model="flexy", usage=usage(1000, 1000), service_tier="flex"),
        lines.chat("g", model="free-m", usage=usage(1000, 0)),
    ]
