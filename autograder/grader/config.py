"""Load and hash autograder/config.toml."""
import hashlib
import os
import tomllib

DEFAULT_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config.toml")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


class ConfigError(ValueError):
    pass


def load(path=None, overrides=()):
    """Read the config; ``overrides`` are "section.key=value" strings (TOML values)
    applied on top, e.g. "budget.pytorch_cnn.train_images=9600"."""
    path = path or os.environ.get("NNAG_CONFIG") or DEFAULT_PATH
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        config = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the grader config ({exc})") from None
    for item in overrides:
        _override(config, item, path)
        raw += b"\n# override " + item.encode("utf-8")
    for section in ("grading", "limits", "time_limits", "size_limits", "thresholds", "partial_credit", "budget"):
        if section not in config:
            raise ConfigError(f"{path}: section [{section}] is missing")
    for key in ("hidden_visibility", "public_visibility"):
        if config["grading"].get(key) not in VISIBILITIES:
            raise ConfigError(f"{path}: grading.{key} must be one of {', '.join(VISIBILITIES)}")
    for stem, value in config["thresholds"].items():
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(f"{path}: thresholds.{stem} must be a number between 0 and 1, not {value!r}")
    grading = config["grading"]
    if not isinstance(grading.get("uids_per_slot"), int) or grading["uids_per_slot"] < 5:
        raise ConfigError(f"{path}: grading.uids_per_slot must be an integer of at least 5 (one uid per graded "
                          f"file, and a spare), not {grading.get('uids_per_slot')!r}")
    if not isinstance(grading.get("landlock"), bool):
        raise ConfigError(f"{path}: grading.landlock must be true or false, not {grading.get('landlock')!r}")
    feedback = config.setdefault("feedback", {"per_class": True, "confusions": 3})
    if not isinstance(feedback.get("per_class"), bool):
        raise ConfigError(f"{path}: feedback.per_class must be true or false, not {feedback.get('per_class')!r}")
    confusions = feedback.get("confusions")
    if not isinstance(confusions, int) or isinstance(confusions, bool) or not 0 <= confusions <= 90:
        raise ConfigError(f"{path}: feedback.confusions must be a whole number from 0 to 90, not {confusions!r}")
    config.setdefault("weights", {})
    config["_overrides"] = list(overrides)
    config["_path"] = path
    config["_hash"] = hashlib.sha256(raw).hexdigest()[:16]
    return config


def _override(config, item, path):
    key, sep, value = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"override {item!r}: expected section.key=value")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"override {item!r}: {value.strip()!r} is not a TOML value ({exc})") from None
    table = config
    for part in parts[:-1]:
        table = table.get(part)
        if not isinstance(table, dict):
            raise ConfigError(f"override {item!r}: {path} has no table {key.rsplit('.', 1)[0]!r}")
    if parts[-1] not in table:
        raise ConfigError(f"override {item!r}: {path} has no setting {key.strip()!r}")
    table[parts[-1]] = parsed
