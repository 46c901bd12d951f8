"""The checkpoint format's metadata rules (no torch, no safetensors needed)."""
import pytest

from int8dit.serialization import FORMAT_VERSION, FormatError, expected_tensors, make_metadata, parse_metadata

LAYER = {"in_features": 64, "out_features": 32, "bias": True, "smooth": True}


def test_metadata_round_trips():
    md = make_metadata({"blocks.0.ff": LAYER}, "0.1.0")
    assert all(isinstance(v, str) for v in md.values())  # safetensors metadata is str -> str
    assert md["format_version"] == FORMAT_VERSION
    assert parse_metadata(md) == {"blocks.0.ff": LAYER}


def test_a_file_of_another_format_is_refused_clearly():
    with pytest.raises(FormatError, match=r"not an int8dit checkpoint"):
        parse_metadata({"format": "pt"}, "x.safetensors")
    with pytest.raises(FormatError, match=r"not an int8dit checkpoint"):
        parse_metadata(None, "x.safetensors")


def test_another_format_version_is_refused_with_both_versions():
    md = make_metadata({"a": LAYER}, "9.9.9")
    md["format_version"] = "2"
    with pytest.raises(FormatError, match=r"format version '2'.*9\.9\.9.*reads version 1"):
        parse_metadata(md)


def test_broken_layer_table_is_refused():
    md = make_metadata({"a": {"in_features": 64}}, "0.1.0")
    with pytest.raises(FormatError, match=r"lacks"):
        parse_metadata(md)
    md["quantized"] = "{not json"
    with pytest.raises(FormatError, match=r"not JSON"):
        parse_metadata(md)


def test_expected_tensors_of_a_layer():
    t = expected_tensors("ff", LAYER)
    assert t == {"ff.weight": ((32, 64), "int8"), "ff.weight_scale": ((32,), "float32"),
                 "ff.bias": ((32,), "float32"), "ff.smooth": ((64,), "float32")}
    assert set(expected_tensors("ff", {**LAYER, "bias": False, "smooth": False})) == {"ff.weight", "ff.weight_scale"}
