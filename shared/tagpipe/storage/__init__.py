"""Where records land: raw hits, canonical events, outcomes, failed events, delivery keys, traces.

`sqlite` is the embedded default for one machine; `bigquery` is the warehouse on GCP.
"""

from tagpipe.storage.base import Store  # noqa: F401
