-- ok.lua: returns normally after a suspension: exit 0.
async.sleep(1)
print("ok fixture done")
return true
