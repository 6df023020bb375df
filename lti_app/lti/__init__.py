"""The only package that imports pylti1p3: DB-backed tool configuration, launch validation, LaunchContext."""
