"""run_notebook.clean_notebook: what changes between runs of the same code is removed."""

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from nlcl_utils.pipeline.run_notebook import clean_notebook, coalesce_streams


def _stream(name, text):
    return new_output("stream", name=name, text=text)


def test_consecutive_streams_of_one_name_are_joined():
    outputs = [_stream("stdout", "a\n"), _stream("stdout", ["b\n", "c\n"]), _stream("stdout", "d")]
    merged = coalesce_streams(outputs)
    assert len(merged) == 1 and merged[0]["text"] == "a\nb\nc\nd"


def test_other_streams_and_outputs_keep_streams_apart():
    picture = new_output("display_data", data={"text/plain": "figure"})
    outputs = [
        _stream("stdout", "a\n"),
        _stream("stderr", "w\n"),
        _stream("stdout", "b\n"),
        picture,
        _stream("stdout", "c\n"),
    ]
    merged = coalesce_streams(outputs)
    assert [o.get("name", o["output_type"]) for o in merged] == ["stdout", "stderr", "stdout", "display_data", "stdout"]


def _notebook(outputs):
    nb = new_notebook(cells=[new_code_cell("print('a'); print('b')", outputs=outputs)])
    nb.metadata["papermill"] = {"duration": 1.0}
    return nb


def test_a_print_split_differently_gives_the_same_notebook_bytes():
    one = _notebook([_stream("stdout", "a\nb\n")])
    two = _notebook([_stream("stdout", "a\n"), _stream("stdout", "b\n")])
    for nb in (one, two):
        clean_notebook(nb)
    assert nbformat.writes(one) == nbformat.writes(two)
    assert "papermill" not in one.metadata
