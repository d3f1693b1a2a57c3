# Writes N session files (OpenCode 1.1.65 layout, project "global") for tools/bench-list-client.sh.
# Usage: gen-sessions.py DATA_DIR PROJECT_DIR N
import json,os,sys,time
data=sys.argv[1]; proj=sys.argv[2]; n=int(sys.argv[3])
os.makedirs(proj,exist_ok=True)
d=os.path.join(data,"storage","session","global"); os.makedirs(d,exist_ok=True)
t0=int(time.time()*1000)-n*1000
import random,string
def sid(i):
    # descending-ish ids: ses_ + 26 chars, valid charset
    return "ses_%012x%s"%(0xffffffffffff-(t0+i*1000), ''.join(random.choice(string.ascii_letters+string.digits) for _ in range(14)))
for i in range(n):
    s=sid(i)
    o={"id":s,"slug":"quiet-otter","version":"1.1.65","projectID":"global","directory":proj,"title":"Session %d: refactor module %d"%(i,i%97),"time":{"created":t0+i*1000,"updated":t0+i*1000+500}}
    open(os.path.join(d,s+".json"),"w").write(json.dumps(o,indent=2))
