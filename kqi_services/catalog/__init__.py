"""A tenant's catalog of files: data (named file sets with tags, ``data``) and datasets arranged from them (``datasets``)."""
