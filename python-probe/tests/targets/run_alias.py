import aliaspkg.early
import aliaspkg.api

aliaspkg.early.use(1 << 20)
aliaspkg.api.compute(1 << 20)
aliaspkg.impl.compute(1 << 20)
print("alias done")
