test("never registered", function() end
