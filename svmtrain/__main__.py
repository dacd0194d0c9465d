"""``python -m svmtrain``: the same command line as ``svmtrain``."""

from svmtrain.cli import main

main(prog_name="svmtrain")
