from freshpkg.home import work as renamed_work  # noqa: F401
