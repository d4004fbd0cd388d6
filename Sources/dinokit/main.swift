print("dinokit")
