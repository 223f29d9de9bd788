"""Privacy requests: suppress, unsuppress and delete people, across ingest, log, store and lanes."""
