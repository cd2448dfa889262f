"""YAML configs: safe loading, !include relative to the including file, cycles, {key}
placeholders from --custom, errors with file and line."""

import pytest

from timecal_core.contract.errors import UserError
from timecal_core.config.yamlfiles import load_yaml, parse_custom


def test_include_is_relative_to_the_including_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "hists.yml").write_text("h1: {delay: 1.0, folder: Hist1D}\n")
    (tmp_path / "sub" / "main.yml").write_text("hists: !include hists.yml\nx: [1, 2]\n")
    assert load_yaml(tmp_path / "sub" / "main.yml") == {"hists": {"h1": {"delay": 1.0, "folder": "Hist1D"}},
                                                        "x": [1, 2]}


def test_include_cycle_is_detected(tmp_path):
    (tmp_path / "a.yml").write_text("b: !include b.yml\n")
    (tmp_path / "b.yml").write_text("a: !include a.yml\n")
    with pytest.raises(UserError, match="cycle") as err:
        load_yaml(tmp_path / "a.yml")
    assert "a.yml -> " in str(err.value)


def test_placeholders_filled_from_custom(tmp_path):
    (tmp_path / "c.yml").write_text('efficiency:\n  name: "OffsetScan{mode}"\n  folder: "Hist2D"\n')
    data = load_yaml(tmp_path / "c.yml", parse_custom(["mode=Sampled"]))
    assert data["efficiency"]["name"] == "OffsetScanSampled"


def test_missing_placeholder_names_file_line_and_fix(tmp_path):
    (tmp_path / "c.yml").write_text('a: 1\nname: "Scan{mode}"\n')
    with pytest.raises(UserError) as err:
        load_yaml(tmp_path / "c.yml")
    assert f"{tmp_path / 'c.yml'}:2" in str(err.value) and "--custom mode=" in str(err.value)


def test_syntax_error_reports_file_and_line(tmp_path):
    (tmp_path / "bad.yml").write_text("threshold: [4000, 5000\npt: 2\n")
    with pytest.raises(UserError, match=r"bad\.yml:\d+:\d+: YAML syntax error"):
        load_yaml(tmp_path / "bad.yml")


def test_unsafe_tags_are_refused(tmp_path, monkeypatch):
    """The command of the tag would create ``pwned`` (the control: an unsafe loader runs it,
    so the check looks where the file would be); timecal's loader refuses the tag and runs
    nothing, wherever it runs from."""
    import yaml

    pwned = tmp_path / "pwned"
    text = f"x: !!python/object/apply:os.system ['touch {pwned}']\n"
    (tmp_path / "evil.yml").write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="evil.yml"):
        load_yaml(tmp_path / "evil.yml")
    assert not pwned.exists()
    yaml.unsafe_load(text)  # the control
    assert pwned.exists(), "the check looks where the command does not write"


def test_custom_needs_key_value():
    with pytest.raises(UserError, match="key=value"):
        parse_custom(["mode"])


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    (tmp_path / "g.yml").write_text("plots:\n  a: 1\n  b: 2\n\n  a: 3\nother: 1\n")
    with pytest.raises(UserError) as err:
        load_yaml(tmp_path / "g.yml")
    assert str(err.value) == (f"{tmp_path / 'g.yml'}:5: duplicate key 'a' (first given on line 2); "
                              f"give each key once (a list holds several values)")


def test_merge_keys_and_equal_keys_in_different_mappings_are_fine(tmp_path):
    (tmp_path / "g.yml").write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nx: 4\n")
    assert load_yaml(tmp_path / "g.yml") == {"base": {"x": 1, "y": 2}, "other": {"x": 1, "y": 3}, "x": 4}


def test_non_utf8_and_absurdly_deep_files_are_one_line_errors(tmp_path):
    (tmp_path / "latin1.yml").write_bytes("a: 1\nb: café\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1.yml:2: not UTF-8 text \(byte 0xe9\)"):
        load_yaml(tmp_path / "latin1.yml")
    (tmp_path / "deep.yml").write_text("a: " + "{b: " * 5000 + "1" + "}" * 5000 + "\n")
    with pytest.raises(UserError, match="nested too deeply"):
        load_yaml(tmp_path / "deep.yml")
