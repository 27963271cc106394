"""An example of a benchmark of your own: one item per row of capitals.jsonl.

Copy this file and a data file (jsonl, json, csv or parquet) next to it. The
marker names the file, the field whose value is the subset, the id field, and
the field sent as the question, which lets the plugin send it ahead of the
test. Passing is correct, failing is wrong; scores, thresholds and reports
work as for the built-in benchmarks:

    pytest --model NAME --base-url URL -k capitals --threshold "capitals/OVERALL>=0.8"
"""

import pytest


@pytest.mark.modeleval_data("capitals.jsonl", subset="continent", id="id", prompt="question")
def test_capitals(sample, model):
    assert sample["answer"].lower() in model.chat(sample["question"]).text.lower()
