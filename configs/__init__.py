"""The shipped configs. This directory is installed as ``svmtrain.configs`` (see pyproject.toml),
so ``svmtrain fit -c NAME`` finds them without a checkout."""
