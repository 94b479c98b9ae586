import sys

from airflow_ha.cli import main

sys.exit(main())
