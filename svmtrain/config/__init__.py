"""The run configuration: typed sections with defaults, validated, read from and written to YAML.

    keys.py      the vocabulary keys are declared in (key(), rules), and check_settings()
    sections.py  the dataclasses: every key, its type, default, rule and doc (the "notes")
    rules.py     validate(): every key, then the rules between keys
    yamltext.py  YAML in and out
    loading.py   load_config (a file and --set overrides), save_config, dict and YAML forms
    shipped.py   the configs shipped inside the package, by name ("default", "quick", ...)

Everything a caller needs is importable from here.
"""

from svmtrain.config.loading import (
    config_file_text,
    config_from_dict,
    config_from_yaml,
    config_to_dict,
    config_to_yaml,
    load_config,
    override_config,
    save_config,
)
from svmtrain.config.rules import key_type, validate
from svmtrain.config.sections import (
    DTYPES,
    Config,
    DataConfig,
    FeaturesConfig,
    HogColorSettings,
    KMeansSettings,
    ModelConfig,
    OptimConfig,
    OutputConfig,
    PreprocessConfig,
    ScheduleConfig,
    TrainConfig,
)
from svmtrain.config.shipped import shipped_names, shipped_text

__all__ = [
    "DTYPES",
    "Config",
    "DataConfig",
    "FeaturesConfig",
    "HogColorSettings",
    "KMeansSettings",
    "ModelConfig",
    "OptimConfig",
    "OutputConfig",
    "PreprocessConfig",
    "ScheduleConfig",
    "TrainConfig",
    "config_file_text",
    "config_from_dict",
    "config_from_yaml",
    "config_to_dict",
    "config_to_yaml",
    "key_type",
    "load_config",
    "override_config",
    "save_config",
    "shipped_names",
    "shipped_text",
    "validate",
]
