"""Tables and figures drawn from numbers: used while runs are made (``experiments``) and when the report
is built from them (``report``). Imports nothing above ``data`` and ``models``."""
