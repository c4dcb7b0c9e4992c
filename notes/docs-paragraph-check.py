import re, subprocess, os, sys
os.chdir('/work/wt-docs')
old = subprocess.run(['git','show','main:README.md'],capture_output=True,text=True).stdout
def units(t):
    out=[]; 
    for para in re.split(r'\n\s*\n', t):
        lines=para.strip('\n').split('\n')
        if all(l.startswith('|') for l in lines if l.strip()):
            out += [l for l in lines if l.strip() and not re.match(r'^\|[-:| ]+\|$', l)]
        else:
            out.append(para)
    return out
def norm(s):
    s = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'"\1"', s)
    return ' '.join(s.split())
files = ['README.md'] + ['docs/'+f for f in sorted(os.listdir('docs')) if f.endswith('.md')]
new = {f: [norm(u) for u in units(open(f).read())] for f in files}
blob = {f: ' '.join(norm(open(f).read()).split()) for f in files}
missing=[]; dup=[]
for u in units(old):
    n=norm(u)
    if not n or n.startswith('#'): 
        # headings: look for them anywhere
        pass
    where=[f for f in files if n in blob[f]]
    if not where: missing.append(u)
    elif len(where)>1: dup.append((where,u))
print('old units', len(units(old)))
print('MISSING', len(missing))
for m in missing: print('  -', m[:160].replace('\n',' '))
print('IN SEVERAL FILES', len(dup))
for w,m in dup: print('  -', w, m[:120].replace('\n',' '))
