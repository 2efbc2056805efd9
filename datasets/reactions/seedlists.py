"""Curated seed molecules (SMILES) for the reaction builder, grouped by what they add.

* :data:`DEFAULT_SMILES`: small closed-shell C/H/N/O molecules (<= 12 atoms) for variety beyond
  ASE's g2 set (the seeds of the shipped store's first 1,000 reactions);
* :data:`HETERO_SMILES`: closed-shell molecules with S, F, Cl or P (thiols, sulfides, disulfides,
  thiocarbonyls, thioamides, thiocyanates, sulfoxides, sulfones, acyl and alkyl halides,
  fluoro- and chloro-alkenes, phosphines, phosphine oxides and sulfides, phosphites, phosphates,
  P-H/P-OH tautomer pairs), mostly <= 12 atoms;
* :data:`LARGE_SMILES`: 10-25-atom substituted versions of the reacting motifs (ketones and
  aldehydes with alkyl and aryl groups, amides, esters, enones, dienes, imines, oximes, azo
  compounds, enols, amines, phosphines, sulfoxides, alkyl and aryl halides, 1,5-dienes, allyl
  vinyl ethers, cyclic dienes), so the same reaction centre appears across molecule size.

``SEED_SETS`` names them for the command line (``--seed-sets default hetero large``). Every
entry embeds cleanly as a neutral closed-shell molecule and no molecule appears twice across
the lists (tests check both).
"""

from __future__ import annotations

__all__ = ["DEFAULT_SMILES", "HETERO_SMILES", "LARGE_SMILES", "SEED_SETS"]

# A curated list of small closed-shell C/H/N/O molecules (<= 12 atoms) for variety beyond g2.
DEFAULT_SMILES: tuple[str, ...] = (
    "NC=O", "CC=O", "C=CO", "OC=O", "CC(C)=O", "CC#N", "N=C=O", "C1=CCC1", "C=CC", "C#CC",
    "C=C=C", "C1CO1", "CC(=O)O", "O=CC=O", "OCC=O", "C=CC=O", "NC(N)=O", "NO", "C=NO", "COC=O",
    "CCC=O", "C=CCO", "C1CC1", "C1COC1", "C1CN1", "C=C=O", "C=CN", "C=N", "NN", "N=N", "CC(N)=O",
    "NCC(=O)O", "O=CCC=O", "C=CC=C", "C1CC(=O)C1", "c1ccoc1", "C=COC", "C#CC=O", "C=CC#N", "NC#N",
    "O=CC#N", "CN=O", "CNC=O", "OCCO", "CCN", "NCCO", "OC=CC=O", "CC=CC", "C1=CC1", "CC(O)=N",
    "OC(O)=O", "C=C(C)O", "C(=O)C=N", "CN=C", "C=NN", "ON=O", "OO", "COO", "C1OC1C", "N#CC#N",
    "CC(=O)C=O", "C=COC=O", "OCC#N", "C1=COC1", "C1=CNC1", "CN(C)C=O", "NCC=O",
    "CCOC=O", "CC(=O)OC", "CC(=O)NC", "CCC#N", "CC=CC=O", "C=CC(=O)O", "OCC(O)=O", "NC(=O)C=O",
    "NC(=O)O", "CN=C=O", "COC#N", "C1CCN1", "c1cocn1", "c1cn[nH]c1", "c1c[nH]cn1", "C1=CC=CC1",
    "C#CC#C", "C=CC=N", "N=CN", "CC=NO", "ONC=O", "OC#N", "C=NC=O", "O=CNC=O", "C=C(O)O", "OC=CO",
    "COCO", "OCO", "CC(O)O", "C#CCO", "C#CCN", "C=C=CO", "NC=CC=O", "CC(=O)C#N", "O=C1CC1",
    "C1OCO1", "C1COO1", "CC1CN1", "OC1CC1", "NC1CC1", "CC1C=C1", "CNN", "CN=NC", "CON",
    "NOC=O", "NC(N)=N", "OC(=O)C=O", "OC(=O)C(O)=O", "CC(N)C=O", "NCC#N", "C=CN=C", "C=NN=C",
    "N=NC=O", "CC(C)O", "CCCO", "CC=C=O", "C=C=N", "CN=C=N", "N=C=N", "c1ncon1", "c1nnco1",
    "c1nn[nH]c1", "O=C1C=CC1", "O=C1CCO1", "O=C1CN1", "O=C1CO1", "C1COC=C1", "C1=CCOC1",
    "CC(C)=N", "CCC=N", "CC=NC", "C=CNC", "C=CCN", "CC(N)=N", "N#CC(N)=O", "N#CCC#N", "C#CC#N",
    "CC=CO", "CC(=O)OC=O", "O=COC=O", "COC(O)=O", "COC(N)=O", "NC(=O)NO", "CNO", "CC=NN",
    "C=NOC", "CCN=O", "OC=N", "O=C1C=C1", "C1=NC1", "N1=NC1", "C1ON1", "C1OO1", "O=CC1CC1",
    "C1CN=C1", "O=C1COC1", "C#CO", "C#CN", "C#COC", "NCCN", "CC(=O)NO", "NC(=O)C(N)=O",
    "NC(=O)C(O)=O", "CC=C=C", "C=CC#C", "C#CCC", "CC1=CC1", "C=CC=CO", "C=CC(C)=O", "C=C(C)C=O",
    "c1nc[nH]n1", "c1cnon1", "C1=CC=NC1",
    # added in the third build session: more small rings, heteroatom chains, cumulenes, nitriles,
    # methyl and amino variants, azoles and azines
    "COCC=O", "CC(=O)OC=C", "CNC(N)=O", "N#CN=C", "CC=CC#N", "c1ccoc1C", "c1cnoc1", "c1nnon1",
    "c1nn[nH]n1", "O=c1cc[nH]1", "O=C1CC=CC1", "O=C1C=CCC1", "O=C1CCCO1", "O=C1CCN1", "OC1=CC1",
    "NC1=CC1", "C1CC1C#N", "OC1CO1", "NC1CO1", "C1OC1C=O", "C=C1CO1", "C=C1CN1", "CC1CC1",
    "C#CC(C)=O", "C#CC(=O)O", "O=CC(O)C=O", "O=C(N)CN", "O=C(O)C#N", "OC(=O)N=O", "O=NC=C",
    "O=NC=O", "O=NN", "O=NNC", "ONN", "NON", "NNC=O", "NNC(N)=O", "N=NN", "N=NNC", "NC(=N)O",
    "NC=NO", "N=CN=C", "OCC=N", "OC=NC", "ON=CC=O", "ON=CC#N", "ON=C=O", "O=C=NC=O", "O=C=C=O",
    "O=C=CC=O", "C=C=C=C", "C=C=C=O", "OC#CO", "NC#CN", "NC#CO", "OC#CC", "NC#CC", "N#CN(C)C",
    "N#CCC=O", "N#CN=O", "N#CON", "N#CNO", "N#CNN", "OCC(O)O", "NC(N)C=O", "NC(O)C=O", "NC(C)=C",
    "CN=NO", "CONC", "COOC", "COOC=O", "CCOO", "OOC=O", "OOO", "OCOO", "C1NCN1", "C1NCO1", "C1NNC1",
    "C1=NOC1", "C1=NNC1", "C1=NN1", "C1=NO1", "C1=CO1", "C1=CN1", "C1CON1", "C1NN1", "O=C1NO1",
    "O=C1NN1", "O=C1OO1", "O=C1C(=O)C1", "N=C1CC1", "N=C1CO1", "C=C1CC(=O)1", "O=C1OC(=O)1",
    "O=C1NC(=O)1", "CC(O)C=O", "CC(O)C#N", "CC(N)C#N", "CC(=O)CO", "CC(=O)CN", "CC(=O)C(C)=O",
    "CC(=O)NN", "CC(=O)N=O", "CC(=NO)C", "CC=NOC", "CC=NC=O", "CC=CN", "CC#CC=O", "CC#CC#N",
    "CCC=C", "CCON", "CCNO", "CCNN", "CCOC#N", "CCN=C=O", "CCC=NO", "COC(=O)C=O", "COC(=O)C#N",
    "COC(=O)OC", "COCC#N", "COCN", "CNC(=N)N", "CNCO", "CNCN", "CN(C)N", "CN(C)O", "CN(O)C=O",
    "CN(N)C=O", "CN1CC1", "CN1CO1", "CN1CN1", "Cc1ccon1", "Cc1cnoc1", "Cc1ncoc1", "Cc1ncon1",
    "Cc1nnco1", "Cc1cc[nH]n1", "Cc1c[nH]cn1", "Cc1ncc[nH]1", "Cc1nc[nH]n1", "Nc1ccon1", "Nc1ncco1",
    "Oc1ccon1", "O=Cc1ccon1", "c1ccncn1", "c1cncnn1", "c1ncncn1", "c1nncnn1", "c1cnnnc1",
    "C1=CN=CC=N1", "C1=CC=NN=C1", "C1=CCNC1", "C1=CNCC1", "C1CNC=N1", "C1COC=N1", "C1CNCO1",
    "C1COCO1", "C1CCNO1", "O=C1CCOC1", "O=C1OCCO1", "O=C1NCCN1", "O=C1NCCO1", "O=C1NCC=C1",
    "O=C1C=CC=C1", "O=C1C=CCO1", "O=C1CC=CO1", "O=C1CC=CN1", "N#CC1CO1", "N#CC1CN1", "OC1COC1",
    "NC1COC1", "OCC1CO1", "C=CC1CO1", "C#CC1CC1", "C#CC1CO1", "O=CC1CN1", "O=C(O)C1CC1",
    "CC(=C)C#N", "CC(=C)C(=O)O", "C=C(N)C=O", "C=C(C=O)C=O", "C=C(C#N)C#N", "C=CN=C=O", "C=CC=NO",
    "C=CC=CN", "C=CC=CC=O", "C=C=CC#N", "N#CC=CC#N", "N#CC=CN", "N#CC(=O)C#N", "O=CC=CC=O",
    "O=CC(=O)C=O", "O=C(O)OO", "O=C(N)ON", "O=C(N)OC=O", "O=C(OC=O)C=O", "O=C1OC=CO1", "O=C1OC=NO1",
    "O=C1NC=NO1", "O=C1NC=CO1", "OC(=O)C(=O)C=O", "NC(=O)C(=O)C=O", "NC(=O)N=O", "NC(=O)N=NC(N)=O",
    "NNC=N", "NN=CN", "NN=NC", "NN=CC=O", "NC(=N)C#N", "NC(=N)C=O", "N=CC#N", "N=CC=CC", "N=CN=CN",
    "N=NC(N)=O", "N=NC=N", "ON=C(N)N", "ON=C1CC1", "OC(=CC=O)C", "OC1=NC=CO1", "OC1=CC=CO1",
)

# S, F, Cl and P chemistry (closed shell, no formal charges).
HETERO_SMILES: tuple[str, ...] = (
    "S", "CS", "CCS", "OCCS", "NCCS", "SCC=O", "C=CS", "SC=O", "OC=S", "CC(=O)S", "CC(=S)O", "NC=S",
    "CC(N)=S", "C=S", "CC=S", "CC(C)=S", "CSC", "CSSC", "SS", "CSS", "C1CS1", "C1CSC1", "c1ccsc1",
    "c1cscn1", "N#CS", "CSC#N", "CN=C=S", "N=C=S", "S=C=S", "O=C=S", "CS(C)=O", "CS(C)(=O)=O",
    "O=S=O", "CS(=O)O", "CS(=O)(=O)O", "CS(N)(=O)=O", "CC(=O)SC", "CSC=O", "COC=S", "NC(N)=S",
    "C=CSC", "C=CCS", "CSO", "C=CC=S", "SC(=S)S", "NC(=S)S", "CSCC=O", "SCCS", "CS(=O)C=C",
    "C=CCS(C)=O", "C=CCSC=C", "CC(=O)CS", "OC(=O)CS", "S=C1CC1", "CSN", "CNC=S", "CNC(C)=S", "CF",
    "FC=O", "CC(F)=O", "C=CF", "FC=CF", "C=C(F)F", "FC(F)=C(F)F", "CCF", "OCCF", "FC(F)F", "FCF",
    "CC(F)(F)F", "FC#N", "FC#C", "NC(F)=O", "FC(F)=O", "CC(=O)CF", "FCC=O", "FC1CC1", "FC=CC=O",
    "C=CC(F)=O", "FC(F)(F)C=O", "OC(=O)CF", "NF", "FO", "FCC#N", "FCCF", "FCC(F)F", "C=CCF", "FCCN",
    "CC(F)C", "OC(F)=O", "FC(=O)C=O", "FC=C=C", "FN=C", "FC=N", "CCl", "ClC=O", "CC(Cl)=O", "C=CCl",
    "ClC=CCl", "C=C(Cl)Cl", "CCCl", "ClCCO", "ClCCl", "ClC(Cl)Cl", "CC(C)Cl", "ClC#N", "ClC#C",
    "ClCC=O", "CC(=O)CCl", "ClC(Cl)=O", "NC(Cl)=O", "OC(=O)CCl", "ClCC#N", "C=CCCl", "ClC1CC1",
    "ClN", "ClO", "ClC=CC=O", "ClC(=O)C=C", "ClCCCl", "ClCCN", "ClCC(Cl)Cl", "ClC=C=C", "ClN=C",
    "ClC=N", "ClC(=O)C(Cl)=O", "FC(Cl)=O", "ClC(F)(F)F", "ClC(Cl)=C(Cl)Cl", "P", "CP", "CP(C)C",
    "CPC", "C=CP", "CP(C)(C)=O", "COP(OC)OC", "OP(O)O", "O=P(O)(O)O", "CP(C)(C)=S", "CP(=O)(O)O",
    "CP(O)O", "O=P(O)O", "CP(=O)O", "CP(C)=O", "CP(C)O", "ClP(Cl)Cl", "FP(F)F", "C1CP1",
    "C1=CPC=C1", "C#P", "CC#P", "C=P", "NP(N)N", "COP(C)C", "CP(C)Cl", "OCP", "CP=O", "P=O", "OP=O",
    "CP(=O)(C)O", "CNP(C)C", "NCP", "CC(=O)P", "C=CCP", "CP(C)C=C", "COP(=O)(OC)OC", "CCP(C)(C)=O",
    "FP(F)(F)=O", "ClP(Cl)(Cl)=O", "CS(=O)Cl", "CS(=O)(=O)Cl", "CS(=O)(=O)F", "ClSCl", "CSCl",
    "ClC(=S)Cl", "FC(F)=S", "ClCCS", "FCCS", "CSCCl", "FS(F)(=O)=O", "ClS(Cl)=O", "CC(=O)SCl",
    "NS(N)(=O)=O", "OS(O)=O", "CS(=O)N", "CN=S(=O)=O", "S=P(Cl)(Cl)Cl",
)

# Substituted versions of the reacting motifs, 10-25 atoms.
LARGE_SMILES: tuple[str, ...] = (
    "CCCC(C)=O", "CCC(=O)CC", "CC(=O)c1ccccc1", "CC(=O)CC(C)=O", "CCOC(=O)CC(C)=O", "CC(C)C(C)=O",
    "O=CCc1ccccc1", "CCCCC=O", "CC(C)(C)C=O", "O=C1CCCCC1", "CC(C)CC=O", "CCC(C)C=O",
    "CC(=O)C(C)(C)C", "O=Cc1ccccc1", "CC1CCCC1=O", "CCCCC(C)=O", "CC(=O)NC(C)C", "CCC(=O)NC",
    "CC(=O)N(C)C", "CN(C)C(=O)c1ccccc1", "CC(=O)Nc1ccccc1", "CCNC(C)=O", "O=CNc1ccccc1",
    "CC(C)NC=O", "CC(=O)N1CCCC1", "CNC(=O)OC(C)C", "CCOC(N)=O", "CCN(CC)C=O", "CC(C)C(N)=O",
    "NC(=O)c1ccccc1", "CNC(=O)c1ccccc1", "CCCOC(C)=O", "COC(=O)c1ccccc1", "CCOC(=O)CC", "CC(C)OC=O",
    "COC(=O)C(C)=C", "CCOC(=O)C=C", "CC(=O)OC(C)=C", "CC(=O)OCC=C", "CC(=O)Oc1ccccc1",
    "CCOC(=O)c1ccccc1", "CCCCOC=O", "CC(C)OC(C)=O", "COC(=O)CC(=O)OC", "CC=CC(C)=O",
    "CC(C)=CC(C)=O", "CC=CC=CC", "C=CC=Cc1ccccc1", "O=CC=Cc1ccccc1", "CC(=O)C=Cc1ccccc1",
    "C=CC=CC=C", "CC=CC=CC=C", "C=CC=CC(C)=O", "C=C(C)C(C)=O", "C=CC(=O)c1ccccc1", "C=CC(=O)CC",
    "C=C(C)C=C", "C=CC(C)=C(C)C", "CC(C)=NC", "CN=Cc1ccccc1", "CCC(C)=NO", "ON=Cc1ccccc1",
    "CC=NN(C)C", "CCN=CC", "CC(=NC)c1ccccc1", "CC(C)=NN", "CCN=NCC", "c1ccc(cc1)N=Nc1ccccc1",
    "CN=Nc1ccccc1", "CC(C)N=NC(C)C", "CN=NC(C)C", "OC(=C)c1ccccc1", "CC(O)=CC(C)=O",
    "CC(O)=C(C)C", "OC=Cc1ccccc1", "CCC(O)=C", "CN(C)C", "CCN(C)C", "CCN(CC)CC", "C1CCNC1",
    "C1CCNCC1", "CN1CCCC1", "CNc1ccccc1", "CC(C)N", "CCCN", "NC1CCCCC1", "CCNCC", "CN(C)c1ccccc1",
    "CC(C)NC(C)C", "CN1CCCCC1", "CN(C)CC=C", "CCCNC", "CCP(CC)CC", "CP(C)c1ccccc1", "CCP(C)C",
    "CPc1ccccc1", "CC(C)P(C)C", "CCCP", "CCS(C)=O", "CS(=O)c1ccccc1", "CCS(=O)CC",
    "CS(=O)(=O)c1ccccc1", "CCS(=O)(=O)CC", "CCCCS", "CCCSC", "CC(=O)SCC", "CSc1ccccc1", "Sc1ccccc1",
    "CC(=S)Nc1ccccc1", "CC(C)SC(C)C", "CCSCC", "C=CCSCC=C", "CCC(N)=S", "CCCC(=O)Cl",
    "ClCC(=O)c1ccccc1", "CC(=O)c1ccc(F)cc1", "CC(=O)c1ccc(Cl)cc1", "FC(F)(F)C(=O)c1ccccc1", "CCCCF",
    "CCCCCl", "CC(C)(C)Cl", "CC(Cl)CC", "CC(C)(C)F", "CCC(F)CC", "Fc1ccccc1", "Clc1ccccc1",
    "FC(F)(F)c1ccccc1", "CCOC(=O)CCl", "CCC(Cl)=O", "CCOP(OCC)OCC",
    "CP(C)(=O)c1ccccc1", "CCOP(C)(=O)OCC", "COP(C)(=O)OC", "CCP(=O)(CC)CC", "C=CCC(C)C=C",
    "C=CCCC=C", "C=CCOC=C", "C=CC(C)OC=C", "C=COCC=CC", "CC1=CC=CC1", "C1=CC=CCC1", "CC1=CC=CCC1",
    "CC1=CCC1", "CC1=C(C)CC1", "CC=CC1CC1", "C=CCCC(C)=O", "C=CCC(C)(C)O", "C=CCCO", "C=CCCCC=O",
    "CC=CCC=C",
)

SEED_SETS: dict[str, tuple[str, ...]] = {
    "default": DEFAULT_SMILES,
    "hetero": HETERO_SMILES,
    "large": LARGE_SMILES,
}
"""Curated seed lists by name (the ``--seed-sets`` choices)."""
