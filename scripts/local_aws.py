"""Starts the embedded local AWS, the package scripts/local_aws/ (its __init__.py says what it
serves; one module per service): `local_aws.py --port N --env-file PATH`, as scripts/local-aws.sh
runs it. The same as `python -m local_aws` with scripts/ on the path; `import local_aws` finds the
package, not this file (a package directory comes before a module of the same name)."""

import os
import sys

sys.dont_write_bytecode = True  # no scripts/local_aws/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from local_aws.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
