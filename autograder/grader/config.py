"""Load and hash autograder/config.toml."""
import hashlib
import os
import tomllib

DEFAULT_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config.toml")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


class ConfigError(ValueError):
    pass


def load(path=None):
    path = path or os.environ.get("NNAG_CONFIG") or DEFAULT_PATH
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        config = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the grader config ({exc})") from None
    for section in ("grading", "time_limits", "size_limits", "thresholds", "partial_credit", "budget"):
        if section not in config:
            raise ConfigError(f"{path}: section [{section}] is missing")
    for key in ("hidden_visibility", "public_visibility"):
        if config["grading"].get(key) not in VISIBILITIES:
            raise ConfigError(f"{path}: grading.{key} must be one of {', '.join(VISIBILITIES)}")
    for stem, value in config["thresholds"].items():
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(f"{path}: thresholds.{stem} must be a number between 0 and 1, not {value!r}")
    config.setdefault("weights", {})
    config["_path"] = path
    config["_hash"] = hashlib.sha256(raw).hexdigest()[:16]
    return config
