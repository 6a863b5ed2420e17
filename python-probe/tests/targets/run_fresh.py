import freshpkg.registry
import freshpkg.home
import freshpkg.renamer

freshpkg.renamer.renamed_work(1 << 20)
freshpkg.registry.work(1 << 20)
freshpkg.home.work(1 << 20)
print("fresh done")
