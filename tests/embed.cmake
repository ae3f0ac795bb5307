# Turn a Lua source file into a C header holding it as a byte array.
# Usage: cmake -DIN=file.lua -DOUT=file.h -DNAME=ident -P embed.cmake
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR nbytes "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* generated from ${IN}: do not edit */\nstatic const unsigned char ${NAME}[] = {\n${body}\n};\nstatic const unsigned long ${NAME}_len = ${nbytes};\n")
