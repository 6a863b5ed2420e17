# Imported before freshpkg.home; during that import, home hands it `work`, which it binds under
# the same name (a module that existed before the import binds the function while it runs).


def adopt(fn):
    globals()[fn.__name__] = fn
