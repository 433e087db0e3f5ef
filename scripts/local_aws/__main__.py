"""`python -m local_aws --port N --env-file PATH` (scripts/local-aws.sh): see server.main."""

import sys

from .server import main

sys.exit(main())
